"""Data attribution: which training images does a prediction rest on? Embed the training
set with a backbone (self-supervised SimCLR trained here, a supervised model's penultimate
layer, a torchvision/timm model from local weights, or raw pixels), then find each query's
nearest training images by cosine similarity (the baseline of "A simple and efficient
baseline for data attribution on images"). `poisonkit attribute` writes the report."""
from .attribute import Attribution, attribute
from .backbones import Backbone, features_backbone, pixel_backbone, pretrained_backbone
from .embed import cached_embed, embed
from .knn import knn, knn_faiss
from .ssl import SimCLRConfig, load_simclr, train_simclr
from .supervised import load_supervised, predict, supervised_backbone, train_supervised

__all__ = ["Attribution", "Backbone", "SimCLRConfig", "attribute", "cached_embed", "embed",
           "features_backbone", "knn", "knn_faiss", "load_simclr", "load_supervised",
           "pixel_backbone", "predict", "pretrained_backbone", "supervised_backbone",
           "train_simclr", "train_supervised"]
