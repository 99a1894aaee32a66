"""Shared data: the synthetic video world, its shipped files (``data_small/``), and real video and subtitle files."""
