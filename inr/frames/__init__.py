"""inrkit.inr.frames: frame decoders for video (NeRV, HNeRV, NeRV++) and their training loop."""
