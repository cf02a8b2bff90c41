"""Tasks for :class:`evstream.train.trainer.Trainer`: model, datasets, loss and evaluation per dataset."""
