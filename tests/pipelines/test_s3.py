"""s3:// images end to end against moto's S3 server on loopback, and the --image_ids subset."""

import json
import shutil
import socket

import fsspec
import fsspec.config
import pytest
import webdataset as wds

from hierdata import subset
from hierdata.errors import InputError
from pipelines.build_hier_openimages import main

BUCKET = "open-images-test"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture()
def s3_server(monkeypatch):
    """moto's S3 server on 127.0.0.1; every s3:// client of this process talks to it."""
    server_module = pytest.importorskip("moto.server")
    port = _free_port()
    server = server_module.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL_S3": endpoint,  # botocore's own setting, honoured by s3fs
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setitem(fsspec.config.conf, "s3", {})  # --s3_anonymous changes it
    fsspec.filesystem("s3").clear_instance_cache()
    yield endpoint
    fsspec.filesystem("s3").clear_instance_cache()
    server.stop()


def test_images_from_an_s3_bucket_make_the_shards(shared_data, s3_server, tmp_path):
    photos = shared_data / "openimages-photos"
    fs = fsspec.filesystem("s3", skip_instance_cache=True)
    fs.mkdir(BUCKET)
    all_ids = sorted(p.stem for p in (photos / "images").glob("*.jpg"))
    for image_id in all_ids:
        # public-read, as the Open Images bucket: the unsigned reads of --s3_anonymous see them
        data = (photos / "images" / f"{image_id}.jpg").read_bytes()
        fs.pipe_file(f"{BUCKET}/validation/{image_id}.jpg", data, ACL="public-read")
    root = tmp_path / "input"
    root.mkdir()
    shutil.copy(photos / "boxes.csv", root / "validation-annotations-bbox.csv")
    shutil.copy(shared_data / "openimages-v4-meta" / "class-descriptions-boxable.csv", root)
    chosen = all_ids[::3]  # a subset: only these images are read, mined and sharded
    (tmp_path / "ids.txt").write_text("\n".join(chosen) + "\n")
    out = tmp_path / "out"
    argv = [
        "--input", str(root),
        "--output", str(out),
        "--images", f"s3://{BUCKET}/{{split}}/{{image_id}}.jpg",
        "--s3_anonymous",
        "--image_ids", str(tmp_path / "ids.txt"),
        "--min_box_area", "0",
    ]  # fmt: skip
    assert main(argv) == 0
    record = json.loads((out / "run.json").read_text())
    assert record["status"] == "succeeded"
    assert record["options"]["s3_anonymous"] is True
    folder = out / "shards" / "validation"
    samples = {
        sample["__key__"]: sample
        for tar in sorted(folder.glob("*.tar"))
        for sample in wds.WebDataset(str(tar), shardshuffle=False)
    }
    assert sorted(samples) == chosen
    assert sum(json.loads((folder / "sizes.json").read_text()).values()) == len(chosen)
    boxes_per_image = {}
    for line in (photos / "boxes.csv").read_text().splitlines()[1:]:
        image_id = line.split(",")[0]
        boxes_per_image[image_id] = boxes_per_image.get(image_id, 0) + 1
    for image_id, sample in samples.items():
        meta = json.loads(sample["json"])
        assert len(meta["boxes"]) == boxes_per_image[image_id]
        assert sample["img.jpg"][:2] == b"\xff\xd8"  # a JPEG cut from the bucket's photo


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("b2\na1\n\na1\n", ["a1", "b2"]),
        ("ImageID,Subset,OriginalURL\nb2,validation,x\na1,validation,y\n", ["a1", "b2"]),
        ("\ufeffa1\r\nb2\r\n", ["a1", "b2"]),
    ],
)
def test_image_id_files(tmp_path, text, expected):
    path = tmp_path / "ids"
    path.write_text(text, encoding="utf-8")
    assert subset.read_image_ids(str(path)).to_pylist() == expected


def test_an_image_id_file_without_ids_is_an_input_error(tmp_path):
    path = tmp_path / "ids"
    path.write_text("not an id!\n")
    with pytest.raises(InputError, match="no image id"):
        subset.read_image_ids(str(path))
