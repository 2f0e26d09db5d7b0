"""From files to stored chunks: extraction (one module per format family), the reading pipeline,
chunking, exclusions, the two-stage indexer (words now, meaning later) and live folder sync."""
