"""Launch the mmkit comparison app: `python app.py [--host 127.0.0.1] [--port 7860] [--share] [--runs-dir runs]`.

The UI lives in the library (`mmkit/app.py`, from `nbs/10_app.ipynb`); this file only starts it."""
import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")   # before gradio is imported

if __name__ == "__main__":
    from mmkit.app import main
    main()
