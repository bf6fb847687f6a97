"""Pictures of results: overlays drawn on the photo."""
