"""The only async glue: drive a sans-I/O session over a transport, run its commands as jobs."""
