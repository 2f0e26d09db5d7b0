"""The embedding model: which one to use (resolve), getting it (download), and running it
(encoder, with the CPU runtime chosen by a measured probe)."""
