"""inrkit.inr.learned: the networks of learned codecs that share a trained model (RVQGAN, M-AdaCode, VC-INR)."""
