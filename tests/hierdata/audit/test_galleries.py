"""Crop galleries (hierdata.audit.galleries): the crops are the shard entries of the top pairs."""

import json
import tarfile

from hierdata import outputs
from schemas.sample import box_key


def test_gallery_crops_are_the_shard_entries_of_the_top_pairs(demo_output):
    out, stats = demo_output
    gallery = stats["gallery"]
    assert gallery["note"] is None and gallery["pairs"]
    label_pairs = outputs.read_table(str(out), "label_pairs")
    top = label_pairs.filter(label_pairs["accepted"]).sort_by([("frequency", "descending")])
    first = gallery["pairs"][0]
    assert (first["parent_label"], first["child_label"]) == (
        top["parent_label"][0].as_py(),
        top["child_label"][0].as_py(),
    )
    assert all(pair["examples"] for pair in gallery["pairs"])
    examples = [e for pair in gallery["pairs"] for e in pair["examples"]]
    checked = 0
    for url in gallery["shards_read"]:
        with tarfile.open(url) as tar:
            names = set(tar.getnames())
            for pair in gallery["pairs"]:
                for e in pair["examples"]:
                    name = f"{e['image_id']}.{box_key(e['parent_box'])}.jpg"
                    if name not in names:
                        continue
                    crop = (out / "report" / e["parent_src"]).read_bytes()
                    assert crop == tar.extractfile(name).read()
                    meta = json.loads(tar.extractfile(f"{e['image_id']}.json").read())
                    by_key = {box["key"]: box["label"] for box in meta["boxes"]}
                    assert by_key[box_key(e["parent_box"])] == pair["parent_label"]
                    assert by_key[box_key(e["child_box"])] == pair["child_label"]
                    checked += 1
    assert checked == len(examples)
