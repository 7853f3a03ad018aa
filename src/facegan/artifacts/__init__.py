"""What a run leaves on disk: run directories, image grids, logs, loading."""
