"""Uploaded files: received over the web port's HTTP, kept on disk by their
content, shared by messages, served to those who may read them."""
