"""The search engine, free of any GUI toolkit: the window and the CLI both call it."""
