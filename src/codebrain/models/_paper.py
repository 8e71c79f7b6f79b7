"""The CodeBrain paper: link, citation and the model-card section that cites it."""

from __future__ import annotations

__all__ = ["CARD_CITATION", "CITATION", "PAPER_URL"]

PAPER_URL = "https://arxiv.org/abs/2506.09110"

CITATION = """@inproceedings{ma2026codebrain,
  title     = {CodeBrain: Bridging Decoupled Tokenizer and Multi-Scale Architecture for EEG
               Foundation Model},
  author    = {Ma, Jingying and Wu, Feng and Lin, Qika and Xing, Yucheng and Liu, Chenyu and
               Jia, Ziyu and Feng, Mengling},
  booktitle = {International Conference on Learning Representations (ICLR)},
  year      = {2026},
  eprint    = {2506.09110},
  archivePrefix = {arXiv}
}"""

#: The ``## Citation`` body of the model cards of both CodeBrain models (markdown).
CARD_CITATION = (
    "Jingying Ma, Feng Wu, Qika Lin, Yucheng Xing, Chenyu Liu, Ziyu Jia, Mengling Feng. "
    "*CodeBrain: Bridging Decoupled Tokenizer and Multi-Scale Architecture for EEG "
    f"Foundation Model.* ICLR 2026. [arXiv:2506.09110]({PAPER_URL}).\n\n"
    f"```bibtex\n{CITATION}\n```"
)
