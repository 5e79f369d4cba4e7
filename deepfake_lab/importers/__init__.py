"""Official checkpoints, one module per lesson that has them: :mod:`.cyclegan`, :mod:`.pix2pix`.

Each module reads an official file's settings off its keys, converts it into this package's networks
exactly (the importers' tests compare outputs), and offers an :class:`~deepfake_lab.translator.Importer`
and a ``translator`` builder that the lesson table (:mod:`deepfake_lab.lessons`) names. The First Order
Motion importer lives with its lesson (:mod:`deepfake_lab.animation.importer`).
"""
