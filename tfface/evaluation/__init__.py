"""The published evaluation protocols: AFLW2000-3D NME by yaw bin, CelebA attributes, LFW-style
verification and mesh RMSE after ICP, for any runtime `tfface.runtimes.load_runner` opens."""
