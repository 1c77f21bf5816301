"""Image folders and zips of them: both layouts, any size, mode and format, FER2013's
names, the cache, and every bad input as one line."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from nas.core.errors import DataError
from nas.data import folder_source, image_folders
from nas.data.datasets import FIVE_CLASS_NAMES, load_emotions, load_image_classes
from nas.data.image_folders import TEST, TRAIN, VALIDATION, list_folder, read_image_folder
from nas.data.summary import summarize

SHARED_ZIP = (
    Path(__file__).resolve().parents[3] / "../shared/data/fer2013_images/fer2013_images.zip"
)
SHARED_CSV = Path(__file__).resolve().parents[3] / "../shared/data/fer2013/fer2013.csv.gz"


def picture(rng: np.random.Generator, size: tuple[int, int], mode: str) -> Image.Image:
    """A random image of ``size`` (width, height) in ``mode``."""
    channels = {"L": 1, "RGB": 3, "RGBA": 4}[mode]
    pixels = rng.integers(0, 256, (size[1], size[0], channels), dtype=np.uint8)
    return Image.fromarray(pixels.squeeze(-1) if channels == 1 else pixels, mode)


def make_folder(root: Path, layout: dict[str, int], *, seed: int = 0) -> Path:
    """``layout`` maps ``CLASS`` or ``SPLIT/CLASS`` to a number of images: RGB, grey and
    RGBA, PNG and JPEG, of mixed sizes."""
    rng = np.random.default_rng(seed)
    for folder, count in layout.items():
        (root / folder).mkdir(parents=True, exist_ok=True)
        for i in range(count):
            mode = ("RGB", "L", "RGBA")[i % 3]
            size = ((40, 40), (64, 48), (23, 31))[i % 3]
            suffix = ".jpg" if i % 2 and mode != "RGBA" else ".png"
            picture(rng, size, mode).save(root / folder / f"img{i}{suffix}")
    return root


def zip_of(folder: Path, target: Path, *, inside: str = "") -> Path:
    with zipfile.ZipFile(target, "w") as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                archive.write(path, inside + path.relative_to(folder).as_posix())
    return target


def test_class_folders_of_any_size_mode_and_format_load_as_rgb(tmp_path: Path):
    root = make_folder(tmp_path / "faces", {"cat": 9, "dog": 12, "owl": 9})
    data = load_image_classes(
        root, image_size=(32, 32), channels=3, validation_fraction=0.34, cache_dir=tmp_path
    )
    assert data.class_names == ("cat", "dog", "owl")
    assert data.train.images.shape[1:] == (32, 32, 3) and data.train.images.dtype == np.uint8
    assert len(data.train) + len(data.validation) == 30 and data.test is None
    assert set(data.validation.labels.tolist()) == {0, 1, 2}  # stratified
    assert data.task().input_shape == (32, 32, 3) and data.task().num_classes == 3
    grey = load_image_classes(root, image_size=(20, 24), channels=1, cache_dir=tmp_path)
    assert grey.train.images.shape[1:] == (20, 24, 1)


def test_a_zip_is_read_without_unpacking_and_gives_the_folders_arrays(tmp_path: Path):
    root = make_folder(tmp_path / "faces", {"train/a": 5, "train/b": 6, "val/a": 2, "val/b": 3})
    (root / ".thumbnails" / "x").mkdir(parents=True)  # hidden folders are no classes
    (root / "train" / "a" / ".DS_Store").write_bytes(b"\0\0")
    archive = zip_of(root, tmp_path / "faces.zip", inside="faces/")  # one wrapping folder
    from_folder = load_image_classes(root, cache_dir=tmp_path / "c1")
    from_zip = load_image_classes(archive, cache_dir=tmp_path / "c2")
    for split in ("train", "validation"):
        ours, theirs = getattr(from_folder, split), getattr(from_zip, split)
        assert np.array_equal(ours.images, theirs.images)
        assert np.array_equal(ours.labels, theirs.labels)
    assert (len(from_zip.train), len(from_zip.validation)) == (11, 5)
    assert not list(tmp_path.glob("faces/faces"))  # nothing unpacked


def test_fer_names_pick_the_classes_and_hold_private_test_images_out(tmp_path: Path):
    layout = {f"train/{name}": 2 for name in (*FIVE_CLASS_NAMES, "fear", "neutral")}
    layout |= {f"test/{name}": 1 for name in (*FIVE_CLASS_NAMES, "fear", "neutral")}
    root = make_folder(tmp_path / "fer", layout)
    (root / "test/happy/img0.png").rename(root / "test/happy/PrivateTest_1.png")
    (root / "test/sad/img0.png").rename(root / "test/sad/PublicTest_2.png")
    data = load_image_classes(root, classes=5, cache_dir=tmp_path)
    assert data.class_names == FIVE_CLASS_NAMES
    assert len(data.validation) == 4 and data.test is not None and len(data.test) == 1
    assert data.test.labels.tolist() == [FIVE_CLASS_NAMES.index("happy")]
    chosen = load_image_classes(root, classes=("sad", "angry"), cache_dir=tmp_path)
    assert chosen.class_names == ("sad", "angry") and set(chosen.train.labels.tolist()) == {0, 1}


def test_the_split_that_validates_is_a_key(tmp_path: Path):
    root = make_folder(
        tmp_path / "f",
        {"training/a": 3, "training/b": 3, "val/a": 1, "val/b": 1, "test/a": 2, "test/b": 2},
    )
    listing = list_folder(root)
    assert listing.split_folders[TRAIN] == "training" and listing.split_folders[VALIDATION] == "val"
    assert np.count_nonzero(listing.splits == TEST) == 4
    data = load_image_classes(root, validation_split="test", cache_dir=tmp_path)
    assert len(data.validation) == 4 and len(data.test) == 2


def test_a_second_load_reads_the_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    root = make_folder(tmp_path / "f", {"a": 3, "b": 3})
    first = read_image_folder(root, image_size=(16, 16), channels=1, cache_dir=tmp_path)

    def no_decoding(*args, **kwargs):
        raise AssertionError("decoded again")

    monkeypatch.setattr(image_folders, "_decode", no_decoding)
    again = read_image_folder(root, image_size=(16, 16), channels=1, cache_dir=tmp_path)
    assert np.array_equal(first.images, again.images) and again.class_names == ("a", "b")
    picture(np.random.default_rng(9), (8, 8), "L").save(root / "a" / "new.png")
    monkeypatch.undo()
    changed = read_image_folder(root, image_size=(16, 16), channels=1, cache_dir=tmp_path)
    assert len(changed.images) == 7  # other bytes: decoded again


def test_nas_data_counts_classes_splits_sizes_and_modes(tmp_path: Path):
    root = make_folder(tmp_path / "f", {"train/a": 4, "train/b": 3, "test/a": 2, "test/b": 1})
    (root / "train/a/notes.txt").write_text("not an image")
    (root / "train/b/broken.jpg").write_bytes(b"\xff\xd8\xff garbage")
    text = "\n".join(summarize(root, cache_dir=tmp_path).lines())
    assert "image folders (ROOT/<split>/<class>)" in text
    assert "unreadable: 1 files, e.g. train/b/broken.jpg" in text
    assert "ignored: 1 files" in text and "modes:" in text and "40x40px" in text
    assert text.count("         a ") == 1


CASES = [
    (
        "empty-class",
        {"a": 2, "b": 2},
        lambda r: (r / "c").mkdir(),
        "c: a class folder with no images",
    ),
    ("one-class", {"a": 3}, None, "one class (a); a classifier needs at least two"),
    (
        "mixed",
        {"train/a": 2, "train/b": 2, "cats": 2},
        None,
        "split folders (train) beside class folders (cats)",
    ),
    (
        "top-image",
        {"a": 2, "b": 2},
        lambda r: (r / "a" / "img0.png").rename(r / "x.png"),
        "the image x.png is not in a class folder",
    ),
    (
        "truncated",
        {"a": 2, "b": 2},
        lambda r: (r / "a" / "img0.png").write_bytes((r / "a" / "img0.png").read_bytes()[:60]),
        "a/img0.png is not a readable image",
    ),
    (
        "not-an-image",
        {"a": 2, "b": 2},
        lambda r: (r / "b" / "fake.jpg").write_text("hello"),
        "b/fake.jpg is not a readable image",
    ),
    (
        "unknown-val-class",
        {"train/a": 2, "train/b": 2, "val/c": 1},
        None,
        "val/c: a class with no folder in train/",
    ),
    ("no-train", {"val/a": 2, "val/b": 2}, None, "no training folder among its split folders"),
    (
        "a-gif-named-png",  # only PNG, JPEG and BMP decoders see the files
        {"a": 2, "b": 2},
        lambda r: picture(np.random.default_rng(0), (8, 8), "L").save(r / "a" / "x.png", "GIF"),
        "a/x.png is not a readable image",
    ),
    (
        "a-link-loop",
        {"a": 2, "b": 2},
        lambda r: (r / "a" / "up").symlink_to(r, target_is_directory=True),
        "a/up: links to a folder read already",
    ),
]


@pytest.mark.parametrize(("name", "layout", "spoil", "message"), CASES, ids=[c[0] for c in CASES])
def test_bad_folders_are_one_line(tmp_path: Path, name, layout, spoil, message):
    root = make_folder(tmp_path / "f", layout)
    if spoil is not None:
        spoil(root)
    with pytest.raises(DataError, match=message.replace("(", r"\(").replace(")", r"\)")) as error:
        load_image_classes(root, cache_dir=tmp_path)
    assert "\n" not in str(error.value) and not list(tmp_path.glob("parsed-folder-*.npz"))


def test_hostile_images_are_refused_before_they_are_decoded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """A zip member or file past the byte limit is not read, an image past the pixel
    limit not decoded: one line each (a zip bomb or a 100-megapixel PNG, in small)."""
    root = make_folder(tmp_path / "f", {"a": 2, "b": 2})
    picture(np.random.default_rng(1), (80, 60), "L").save(root / "b" / "big.png")
    monkeypatch.setattr(image_folders, "MAX_IMAGE_PIXELS", 4_000)  # the others: 40x40, 64x48
    with pytest.raises(DataError, match=r"b/big.png is not a readable image \(80x60 pixels, past"):
        load_image_classes(root, cache_dir=tmp_path)
    monkeypatch.undo()
    archive = zip_of(root, tmp_path / "f.zip")
    monkeypatch.setattr(folder_source, "MAX_FILE_BYTES", 1_000)
    with pytest.raises(DataError, match=r"bytes, past the 0 MiB an image may have"):
        load_image_classes(archive, cache_dir=tmp_path)
    assert not list(tmp_path.glob("parsed-folder-*.npz"))


def test_sixteen_bit_grey_keeps_its_top_eight_bits(tmp_path: Path):
    root = make_folder(tmp_path / "f", {"a": 2, "b": 2})
    wide = np.arange(16 * 16, dtype=np.uint16).reshape(16, 16) * 256  # 0..65280
    Image.fromarray(wide).save(root / "a" / "deep.png")
    decoded = read_image_folder(root, image_size=(16, 16), channels=1, cache_dir=tmp_path)
    (index,) = [i for i, name in enumerate(decoded.names) if name.endswith("deep.png")]
    assert np.array_equal(decoded.images[index, :, :, 0], (wide >> 8).astype(np.uint8))


def test_a_linked_class_folder_is_read_through(tmp_path: Path):
    elsewhere = make_folder(tmp_path / "elsewhere", {"b": 3})
    root = make_folder(tmp_path / "f", {"a": 2})
    (root / "b").symlink_to(elsewhere / "b", target_is_directory=True)
    decoded = read_image_folder(root, image_size=(8, 8), channels=1, cache_dir=tmp_path)
    assert decoded.class_names == ("a", "b") and np.bincount(decoded.labels).tolist() == [2, 3]


def test_an_image_rewritten_in_place_is_decoded_again(tmp_path: Path):
    root = make_folder(tmp_path / "f", {"a": 2, "b": 2})
    first = read_image_folder(root, image_size=(8, 8), channels=1, cache_dir=tmp_path)
    Image.fromarray(np.zeros((40, 40), np.uint8)).save(root / "a" / "img0.png")  # same name
    again = read_image_folder(root, image_size=(8, 8), channels=1, cache_dir=tmp_path)
    assert again.content_hash != first.content_hash
    assert again.images[again.names.index("a/img0.png")].max() == 0


def test_a_damaged_cache_file_is_decoded_again(tmp_path: Path):
    root = make_folder(tmp_path / "f", {"a": 2, "b": 2})
    first = read_image_folder(root, image_size=(8, 8), channels=1, cache_dir=tmp_path)
    (cached,) = tmp_path.glob("parsed-folder-*.npz")
    cached.write_bytes(b"PK\x03\x04 not a zip at all")
    again = read_image_folder(root, image_size=(8, 8), channels=1, cache_dir=tmp_path)
    assert np.array_equal(first.images, again.images)


def test_unreadable_files_may_be_counted_and_skipped(tmp_path: Path):
    root = make_folder(tmp_path / "f", {"a": 3, "b": 3})
    (root / "a" / "fake.png").write_text("hello")
    decoded = read_image_folder(
        root, image_size=(8, 8), channels=1, skip_unreadable=True, cache_dir=tmp_path
    )
    assert decoded.unreadable == ("a/fake.png",) and len(decoded.images) == 6


@pytest.mark.parametrize(
    ("classes", "message"),
    [
        (("a", "zebra"), "classes names 'zebra', which has no class folder there"),
        (5, "classes = 5, but it has 2 class folders"),
    ],
)
def test_classes_that_are_not_there_are_one_line(tmp_path: Path, classes, message):
    root = make_folder(tmp_path / "f", {"a": 3, "b": 3})
    with pytest.raises(DataError, match=message):
        load_image_classes(root, classes=classes, cache_dir=tmp_path)


def test_a_cached_zip_is_not_listed_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    root = make_folder(tmp_path / "faces", {"train/a": 3, "train/b": 3, "val/a": 1, "val/b": 1})
    archive = zip_of(root, tmp_path / "faces.zip")
    first = load_image_classes(archive, cache_dir=tmp_path / "c")

    def listed(self):  # the cache is keyed by the zip's bytes: no listing needed
        raise AssertionError("a cached load read the zip's directory")

    monkeypatch.setattr(folder_source.FolderSource, "_listing", listed)
    again = load_image_classes(archive, cache_dir=tmp_path / "c")
    assert np.array_equal(first.train.images, again.train.images)


def test_a_zip_without_images_is_one_line(tmp_path: Path):
    archive = tmp_path / "empty.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("readme.txt", "nothing here")
    with pytest.raises(DataError, match=r"empty\.zip: no images"):
        list_folder(archive)
    (tmp_path / "bad.zip").write_bytes(b"PK not really")
    with pytest.raises(DataError, match=r"bad\.zip: not a readable zip file"):
        list_folder(tmp_path / "bad.zip")


def test_jpeg_in_a_zip_decodes_like_pillow(tmp_path: Path):
    rng = np.random.default_rng(3)
    archive = tmp_path / "x.zip"
    buffers = {}
    with zipfile.ZipFile(archive, "w") as z:
        for name in ("train/a/1.jpg", "train/b/2.jpg", "train/a/3.jpg", "train/b/4.jpg"):
            buffer = io.BytesIO()
            picture(rng, (48, 48), "L").save(buffer, "JPEG")
            buffers[name] = buffer.getvalue()
            z.writestr(name, buffer.getvalue())
    decoded = read_image_folder(archive, image_size=(48, 48), channels=1, cache_dir=tmp_path)
    for name, image in zip(decoded.names, decoded.images, strict=True):
        expected = np.asarray(Image.open(io.BytesIO(buffers[name])).convert("L"))
        assert np.array_equal(image[..., 0], expected)


@pytest.mark.skipif(
    not SHARED_ZIP.is_file(), reason="the shared FER2013 zip is not beside this clone"
)
def test_the_shared_zip_holds_the_shared_csvs_faces(tmp_path: Path):
    folders = load_image_classes(SHARED_ZIP, classes=5, cache_dir=tmp_path)
    csv = load_emotions(SHARED_CSV, classes=5, cache_dir=tmp_path)
    assert folders.class_names == csv.class_names

    def content(split):
        flat = split.images.reshape(len(split), -1)
        return sorted(zip((row.tobytes() for row in flat), split.labels.tolist(), strict=True))

    assert content(folders.train) == content(csv.train)
    assert content(folders.validation) == content(csv.validation)


def test_balanced_class_weights_weigh_every_class_the_same(tmp_path: Path):
    from nas.core.errors import ConfigError
    from nas.engine.experiment import experiment_from_dict
    from nas.engine.task_data import load_task_data

    root = make_folder(tmp_path / "f", {"a": 12, "b": 4, "c": 8})

    def data(weights: object):
        table = {"name": "w", "data": {"path": str(root), "image_size": 16}}
        table["budget"] = {"class_weight": weights}
        return load_task_data(experiment_from_dict(table)).eval_data

    balanced = data("balanced")
    counts = np.bincount(balanced.train_targets, minlength=3)
    weights = np.asarray(balanced.class_weights)
    assert np.allclose(weights * counts, len(balanced.train_targets) / 3)
    assert np.allclose(balanced.sample_weights(np.array([1, 0])), [weights[1], weights[0]])
    assert data("none").class_weights is None
    assert data([1.0, 2.0, 3.0]).class_weights == (1.0, 2.0, 3.0)
    with pytest.raises(ConfigError, match="lists 2 weights for 3 classes"):
        data([1.0, 2.0])
    with pytest.raises(ConfigError, match="class_weight must be 'none', 'balanced'"):
        data("inverse")
    with pytest.raises(ConfigError, match="class_weight applies to classification tasks"):
        load_task_data(
            experiment_from_dict(
                {
                    "name": "k",
                    "space": "resunet",
                    "objectives": ["rmse", "params"],
                    "data": {"task": "keypoints"},
                    "budget": {"class_weight": "balanced"},
                }
            )
        )


def test_class_weights_reach_the_training_batches(tmp_path: Path):
    from nas.core.task import Task
    from nas.core.trial import EvalData
    from nas.training.core import training_batches

    labels = np.array([0, 0, 0, 1], dtype=np.int64)
    data = EvalData(
        task=Task(kind="classification", input_shape=(4, 4, 1), num_classes=2),
        train_images=np.zeros((4, 4, 4, 1), np.uint8),
        train_targets=labels,
        validation_images=np.zeros((1, 4, 4, 1), np.uint8),
        validation_targets=labels[:1],
        class_weights=(0.5, 2.0),
    )
    (images, targets, weights), *_ = list(training_batches(data, 4, seed=0).take(1))
    assert images.shape == (4, 4, 4, 1)
    assert np.allclose(weights.numpy(), np.where(targets.numpy() == 1, 2.0, 0.5))


@pytest.mark.slow
def test_an_rgb_folder_is_searched_exported_and_evaluated_end_to_end(
    tmp_path: Path, ray_local, capsys
):
    from nas.cli import main

    root = make_folder(tmp_path / "pets", {"cat": 24, "dog": 16, "owl": 20})
    experiment = tmp_path / "pets.toml"
    experiment.write_text(
        f'name = "pets"\nseed = 3\n[data]\npath = "{root}"\nimage_size = 24\nchannels = 3\n'
        "validation_fraction = 0.25\n"
        '[budget]\ntrain_images = 64\nmax_params = 60000\nclass_weight = "balanced"\n'
        "train_seconds = 120\ntimeout_seconds = 300\n"
        '[search]\nstrategy = "random"\npopulation = 4\nmax_evaluations = 2\ngenerations = 0\nworkers = 2\n'
        "[final]\nepochs = 1\n"
    )
    run = tmp_path / "run"
    assert main(["search", str(experiment), "--out", str(run)]) == 0
    info = (run / "run.json").read_text()
    assert '"output_names": [\n    "cat",\n    "dog",\n    "owl"' in info or '"cat"' in info
    export = run / "final"
    card = (export / "MODEL_CARD.md").read_text()
    assert "cat, dog, owl" in card and "24x24x3" in card.replace(" ", "")
    capsys.readouterr()
    assert main(["evaluate", str(export), "--data", str(root)]) == 0
    out = capsys.readouterr().out
    assert "(validation)" in out and "owl" in out
