"""The internal language of IAForAll: request and event types, domain errors."""
