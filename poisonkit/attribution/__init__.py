"""Data attribution: which training images does a prediction rest on? Embed the training
set with a backbone (self-supervised SimCLR trained here, a supervised model's penultimate
layer, a torchvision/timm model from local weights, or raw pixels), then find each query's
nearest training images by cosine similarity (the baseline of "A simple and efficient
baseline for data attribution on images"). `poisonkit attribute` writes the report."""
