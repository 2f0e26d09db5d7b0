"""Answering a query: its syntax and filters (query), the request a front-end sends (request), and
the searcher that gathers candidates from a backend, fuses the channels and shapes the hits."""
