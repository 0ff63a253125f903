"""The sans-I/O core: every rule of the protocol, no awaits, no wall clock, no model runtimes."""
