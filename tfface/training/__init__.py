"""Training the joint FaceModel with model.fit: typed configs, datasets, strategies, phases, callbacks."""
