"""The pure core: job states, retry policy and input schemas. No I/O, no Django."""
