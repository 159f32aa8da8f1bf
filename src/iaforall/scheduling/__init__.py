"""Who runs next: a pure policy and the one owner of queue state."""
