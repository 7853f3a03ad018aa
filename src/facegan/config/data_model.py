"""The `data` and `model` sections: what is trained on, and the networks."""

from __future__ import annotations

import dataclasses

from facegan.config.common import (
    ARCHITECTURES,
    DEFAULT_MAX_PIXELS,
    DEFAULT_MIN_SIZE,
    EMBEDDED_LFW,
    MAX_PIXELS_LIMIT,
    fail,
    is_power_of_two,
)


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """Where the training images come from and how they are prepared.

    Attributes:
        source: a folder of images (searched recursively), a `.zip` of images,
            or `embedded:lfw` (the 100 LFW face crops that scikit-image ships).
        flip: randomly mirror images left-right (a free 2x for faces).
        max_pixels: images with more pixels (width x height) are skipped before
            they are decoded: a tiny file can declare 40000x40000 pixels and
            exhaust memory (a decompression bomb). The default, 64 million,
            admits every common camera sensor. Above ~179 million Pillow refuses
            an image itself, whatever this says.
        min_size: images whose short side is below this many pixels are skipped
            (a 1x1 tracking pixel holds no face); from 1 to 4096. Images larger
            than this but smaller than the training resolution are upscaled, with
            a warning from `facegan inspect-data`.
        labels: where class labels come from, for class-conditional training:
            empty (none), `pattern:REGEX` (a regular expression with named
            groups, matched against each file's path relative to the data
            folder: `pattern:^(?P<age>\\d+)_(?P<gender>\\d)_(?P<race>\\d)_` for
            UTKFace) or `csv:PATH` (a CSV whose first column is that relative
            path and whose other columns, with a header, are attributes). Files
            without labels are skipped and reported.
        label_bins: turns numeric attributes into classes by bin edges,
            `age=0,13,20,30,40,50,60,120` (`;` between attributes): class i holds
            values in [edge i, edge i+1). Other attributes are categorical: one
            class per distinct value.
        label_values: resolved when a run starts (leave it empty): the sorted
            distinct values of each categorical attribute, `gender=0,1;race=0,1,2,3,4`,
            so that class indices can be mapped back to what the data said.
            With a packed dataset, `labels = "packed"` trains on the labels
            `facegan pack --labels` stored (the other label settings come from it).
        pack_above_gb: a folder or zip whose decoded images need more memory than
            this (GB) trains from memory all the same, with one log line saying
            that `facegan pack` would start faster and use less memory; 0: never say it.
        label_names: readable names for the classes of attributes, in class
            order, shown on the page, in captions and in `generate --by` file
            names, and accepted by `--label`: `gender=male,female;race=white,
            black,asian,indian,other` (`;` between attributes; one name per class).
        links: symbolic links inside a data folder that point outside it:
            `follow` (the default: datasets are often assembled from links;
            `facegan inspect-data` lists them) or `inside` (not followed,
            reported like a bad file). Links within the folder are always followed.
    """

    source: str = EMBEDDED_LFW
    flip: bool = True
    max_pixels: int = DEFAULT_MAX_PIXELS
    min_size: int = DEFAULT_MIN_SIZE
    labels: str = ""
    label_bins: str = ""
    label_values: str = ""
    pack_above_gb: float = 2.0
    links: str = "follow"
    label_names: str = ""

    def __post_init__(self) -> None:
        for part in filter(None, (p.strip() for p in self.label_names.split(";"))):
            name, sep, listed = part.partition("=")
            if not sep or not name.strip() or not all(v.strip() for v in listed.split(",")):
                fail(
                    "data.label_names",
                    "must be NAME=CLASS,CLASS,... with `;` between attributes, one name per class",
                    self.label_names,
                )
        if self.links not in ("follow", "inside"):
            fail("data.links", "must be follow or inside", self.links)
        if not self.source:
            fail("data.source", "must be a folder, a .zip file or `embedded:lfw`", self.source)
        if self.source.startswith("embedded:") and self.source != EMBEDDED_LFW:
            fail(
                "data.source",
                f"names an unknown embedded dataset; allowed: {EMBEDDED_LFW}",
                self.source,
            )
        if isinstance(self.max_pixels, bool) or not 1 <= self.max_pixels <= MAX_PIXELS_LIMIT:
            fail(
                "data.max_pixels",
                f"must be a positive integer up to {MAX_PIXELS_LIMIT}",
                self.max_pixels,
            )
        if isinstance(self.min_size, bool) or not 1 <= self.min_size <= 4096:
            fail("data.min_size", "must be an integer from 1 to 4096", self.min_size)
        if (
            self.labels
            and self.labels != "packed"
            and not self.labels.startswith(("pattern:", "csv:"))
        ):
            fail(
                "data.labels", "must be empty, `pattern:REGEX`, `csv:PATH` or `packed`", self.labels
            )
        if isinstance(self.pack_above_gb, bool) or not 0 <= self.pack_above_gb <= 1e6:
            fail(
                "data.pack_above_gb",
                "must be a number of GB from 0 (never) to 1000000",
                self.pack_above_gb,
            )
        if self.labels.startswith("pattern:"):
            import re

            try:
                compiled = re.compile(self.labels[len("pattern:") :])
            except re.error as err:
                fail("data.labels", f"must hold a valid regular expression ({err})", self.labels)
            if not compiled.groupindex:
                fail("data.labels", "needs named groups, e.g. (?P<gender>\\d)", self.labels)
        if self.label_bins and not self.labels:
            fail("data.label_bins", "needs data.labels", self.label_bins)
        for part in filter(None, self.label_bins.split(";")):
            name, sep, edges = part.partition("=")
            try:
                values = [float(e) for e in edges.split(",")]
            except ValueError:
                values = []
            if not sep or not name.strip() or len(values) < 2 or values != sorted(set(values)):
                fail(
                    "data.label_bins",
                    "must be NAME=EDGE,EDGE,... with increasing edges (`;` between attributes)",
                    self.label_bins,
                )


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """Generator and discriminator shape.

    Attributes:
        arch: network family.
        resolution: square image side, a power of two from 16 to 256.
        channels: 3 (RGB) or 1 (grayscale); None means "from the data" and is
            resolved when a run starts (1 for `embedded:lfw`, else 3).
        latent_dim: size of the generator's noise input.
        width: channels of the widest-resolution layer (DCGAN's ngf/ndf).
        d_width: the discriminator's `width` when it differs from the
            generator's (dcgan); None: `width`.
        max_width: cap on channels at the low resolutions.
        d_spectral_norm: spectral normalization on the discriminator's layers
            (dcgan, resnet; stylegan2's discriminator does not use it).
        g_spectral_norm: spectral normalization on the generator's layers
            (dcgan, resnet; BigGAN uses it in both).
        mapping_layers: stylegan2: fully connected layers of the mapping network
            (w has latent_dim features).
        d_minibatch_std: dcgan: the discriminator appends the minibatch standard
            deviation as one more feature map before its last layer (ProGAN), so
            it can see a lack of variety in a batch.
        g_skip_excitation: dcgan: skip-layer excitation (FastGAN): each
            generator block at 32 px and up is scaled per channel by gates
            computed from the block 8x smaller (at least 4x4), a cheap path
            for global structure to reach the fine layers.
        label_classes: class counts of the conditioning attributes, e.g.
            `gender:2,age:7`; None (unconditional, or resolved from
            `data.labels` when a run starts).
    """

    arch: str = "dcgan"
    resolution: int = 64
    channels: int | None = None
    latent_dim: int = 128
    width: int = 64
    d_width: int | None = None
    max_width: int = 512
    d_spectral_norm: bool = False
    g_spectral_norm: bool = False
    mapping_layers: int = 8
    label_classes: str | None = None
    d_minibatch_std: bool = False
    g_skip_excitation: bool = False

    def __post_init__(self) -> None:
        if self.arch not in ARCHITECTURES:
            fail("model.arch", f"must be one of {', '.join(ARCHITECTURES)}", self.arch)
        if not (is_power_of_two(self.resolution) and 16 <= self.resolution <= 256):
            fail("model.resolution", "must be a power of two from 16 to 256", self.resolution)
        if self.channels not in (None, 1, 3):
            fail("model.channels", "must be 1 (grayscale) or 3 (RGB)", self.channels)
        if not 1 <= self.latent_dim <= 4096:
            fail("model.latent_dim", "must be an integer from 1 to 4096", self.latent_dim)
        if not 1 <= self.width <= 4096:
            fail("model.width", "must be an integer from 1 to 4096", self.width)
        if self.d_width is not None and not 1 <= self.d_width <= 4096:
            fail(
                "model.d_width",
                "must be empty (model.width) or an integer from 1 to 4096",
                self.d_width,
            )
        if not self.width <= self.max_width <= 8192:
            fail(
                "model.max_width",
                f"must be from model.width ({self.width}) to 8192",
                self.max_width,
            )
        if not 1 <= self.mapping_layers <= 16:
            fail("model.mapping_layers", "must be an integer from 1 to 16", self.mapping_layers)
        if self.label_classes is not None:
            parse_label_classes(self.label_classes)  # fails with the field's name

    @property
    def conditional(self) -> bool:
        return bool(self.label_classes)

    @property
    def label_sizes(self) -> list[tuple[str, int]]:
        """[(attribute, classes), ...] in order; [] when unconditional."""
        return parse_label_classes(self.label_classes) if self.label_classes else []


def parse_label_classes(text: str) -> list[tuple[str, int]]:
    """'gender:2,age:7' -> [('gender', 2), ('age', 7)] (validated)."""
    pairs = []
    for part in text.split(","):
        name, _, count = part.partition(":")
        try:
            classes = int(count)
        except ValueError:
            classes = 0
        if not name.strip() or not 2 <= classes <= 100000:
            fail(
                "model.label_classes", "must be NAME:CLASSES,... with at least 2 classes each", text
            )
        pairs.append((name.strip(), classes))
    return pairs
