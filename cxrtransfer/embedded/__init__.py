"""The embedded demo data: generators of a synthetic CheXpert and of a synthetic in-domain source."""
