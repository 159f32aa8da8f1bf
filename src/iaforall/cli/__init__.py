"""The `iaforall` command, one module per command group."""
