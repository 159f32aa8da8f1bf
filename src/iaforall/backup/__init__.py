"""Backup and restore of everything on a server that is its people's: `iaforall backup` and
`restore`, and the admin page's download (see docs/backup.md)."""
