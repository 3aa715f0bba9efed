"""Take the README screenshots of the Predict place.

Run under a real X server (not offscreen), e.g.::

    xvfb-run -a -s "-screen 0 1400x900x24" python -m tests.gui.predict.shot_predict resources/screenshots

Writes ``predict.png`` (a transfer model trained on the demo ponies: cards with a "not
sure" one and a Grad-CAM overlay), ``predict-table.png`` (the whole demo folder plus a
broken file, in the table, sorted by confidence) and ``predict-imagenet.png`` (no trained
model: the ImageNet network on real photos). Without ``--model`` it makes the demo data
and trains a quick transfer model first (about a minute on a CPU).

Not a test (no ``test_`` prefix): it drives the real page the way a user would.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QApplication


def make_model(work: Path) -> tuple[Path, Path]:
    from ponyclassifier.core.demo import generate_demo_dataset
    from ponyclassifier.core.engine import TrainConfig, Trainer

    data = work / "demo"
    generate_demo_dataset(data, per_class=30)
    result = Trainer(TrainConfig(recipe="transfer", epochs=5, image_size=128, device="cpu")).fit(data)
    model = work / "ponies.pony"
    result.model.save(model)
    return model, data


def pick_pictures(model: Path, data: Path) -> list[str]:
    """One confident right answer per class, with one "not sure" picture third."""
    from ponyclassifier.core.predict import Predictor

    predictor = Predictor.from_file(model, device="cpu")
    preds = predictor.predict_paths([data])
    sure, unsure = {}, None
    for p in preds:
        truth = Path(p.path).parent.name
        if p.error is None and p.label == truth and not p.unsure:
            if truth not in sure or p.confidence > sure[truth].confidence:
                sure[truth] = p
        elif p.error is None and p.unsure and (unsure is None or
                                               abs(p.confidence - 0.4) < abs(unsure.confidence - 0.4)):
            unsure = p  # clearly under the threshold, not a borderline case
    chosen = [p.path for p in sure.values()]
    if unsure is not None:
        chosen.insert(2, unsure.path)
    return chosen


def real_photos(work: Path) -> list[str]:
    from PIL import Image
    from skimage import data as skdata

    out = []
    for name in ("chelsea", "coffee", "rocket"):
        path = work / f"{name}.jpg"
        Image.fromarray(getattr(skdata, name)()).save(path, quality=92)
        out.append(str(path))
    return out


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("out", help="folder for the PNG files")
    ap.add_argument("--model", help="a .pony model trained on the demo data")
    ap.add_argument("--data", help="the demo data folder the model was trained on")
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    tmp = tempfile.TemporaryDirectory()
    work = Path(tmp.name)
    if args.model:
        model, data = Path(args.model), Path(args.data)
    else:
        model, data = make_model(work)
    pictures = pick_pictures(model, data)
    broken = work / "holiday-notes.jpg"
    broken.write_text("not a picture")
    photos = real_photos(work)

    from ponyclassifier.gui.app import configure_application
    from ponyclassifier.gui.predict.page import PredictPage

    app = QApplication(sys.argv[:1])
    configure_application(app)
    app.setStyle("Fusion")
    page = PredictPage()
    page.resize(1400, 860)
    steps: list = []

    def next_step(*_):
        if steps:
            QTimer.singleShot(300, steps.pop(0))

    def shoot(name: str):
        def do():
            page.grab().save(str(out / name))
            print(f"saved {out / name}")
            next_step()
        return do

    def predict_cards():
        page.predictions_finished.connect(on_cards)
        page.predict_paths(pictures)

    def on_cards(n: int):
        page.predictions_finished.disconnect(on_cards)
        card = page.cards[1]
        page.grad_cam_ready.connect(on_cam)
        card.cam_button.click()

    def on_cam(index: int):
        page.grad_cam_ready.disconnect(on_cam)
        next_step()

    def predict_table():
        page.predictions_finished.connect(on_table)
        page.predict_paths([data, broken])

    def on_table(n: int):
        page.predictions_finished.disconnect(on_table)
        page.tabs.setCurrentIndex(1)
        # least sure first: the broken file, then the "not sure" rows
        page.table_view.sortByColumn(2, Qt.SortOrder.AscendingOrder)
        next_step()

    def imagenet():
        page.model_loaded.connect(on_imagenet)
        page.set_model_path(None)

    def on_imagenet(desc: str):
        page.model_loaded.disconnect(on_imagenet)
        page.tabs.setCurrentIndex(0)
        page.topk_spin.setValue(5)
        page.predictions_finished.connect(on_photos)
        page.predict_paths(photos)

    def on_photos(n: int):
        page.predictions_finished.disconnect(on_photos)
        page.grad_cam_ready.connect(on_cam)
        page.cards[0].cam_button.click()

    def done():
        page.shutdown()
        app.quit()

    steps += [predict_cards, shoot("predict.png"), predict_table, shoot("predict-table.png"), imagenet,
              shoot("predict-imagenet.png"), done]

    def on_loaded(desc: str):
        page.model_loaded.disconnect(on_loaded)
        next_step()

    page.model_loaded.connect(on_loaded)
    page.set_model_path(str(model))
    page.show()
    code = app.exec()
    tmp.cleanup()
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
