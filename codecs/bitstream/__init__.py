"""inrkit.codecs.bitstream: the bytes — container, entropy coding, quantization, typed headers."""
