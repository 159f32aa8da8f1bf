"""Knowledge: documents read into cited text chunks, embedded and searched."""
