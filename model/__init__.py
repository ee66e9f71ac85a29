"""The dubbing model in the diffusers shape: tensors in, tensors out; weights via save/from_pretrained."""
