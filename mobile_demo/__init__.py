"""tfface on the device: an edge app (`mobile_demo.edge`, LiteRT + NumPy + OpenCV only) and a
browser page (`mobile_demo/web`). See mobile_demo/README.md."""
