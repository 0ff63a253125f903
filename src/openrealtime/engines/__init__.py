"""Model engines behind small Protocols; real ones import their heavy library inside their own module."""
