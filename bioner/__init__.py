"""bioner: biomedical named entity recognition with Hugging Face encoders, Lightning and Hydra."""

__version__ = "0.1.0"
