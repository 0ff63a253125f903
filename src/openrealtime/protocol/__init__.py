"""Wire models of OpenAI's Realtime protocol (GA names) and the one codec that reads and writes them."""
