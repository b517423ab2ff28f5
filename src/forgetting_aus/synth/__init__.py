"""The synthetic FACS face world and its dataset twins (see ``shared/design/DATA.md``).

Modules: ``identity`` (identity/nuisance parameters, samplers, disjoint id ranges),
``render`` (the vectorised renderer with 68 landmarks, chaining ``geometry`` →
``canvas``/``paint`` → ``imaging``), ``expressions`` (emotion, pain and
posed-CK+ AU samplers), ``twins`` (writers in the native AffectNet/UNBC/CK+ formats,
``ensure_twin``), ``checks`` (AU visibility, trivial baselines, AU roles/co-occurrence).
"""

from .checks import au_cooccurrence, au_roles_in_pain, au_visibility, trivial_baselines
from .expressions import (
                          UNINFORMATIVE_PAIN_AUS,
                          sample_ckplus_peaks,
                          sample_emotion_aus,
                          sample_pain_sequences,
)
from .identity import (
                          ID_RANGES,
                          Identities,
                          Nuisance,
                          identities_from_ids,
                          sample_identities,
                          sample_nuisance,
)
from .render import render_faces, render_speed
from .twins import (
                          POSED_INTENSITY,
                          ensure_twin,
                          truth_root,
                          write_affectnet_twin,
                          write_ckplus_twin,
                          write_six_emotion_set,
                          write_unbc_twin,
)

__all__ = [
    "ID_RANGES", "Identities", "Nuisance", "POSED_INTENSITY", "UNINFORMATIVE_PAIN_AUS", "au_cooccurrence",
    "au_roles_in_pain", "au_visibility", "ensure_twin", "identities_from_ids", "render_faces",
    "render_speed", "sample_ckplus_peaks", "sample_emotion_aus", "sample_identities",
    "sample_nuisance", "sample_pain_sequences", "trivial_baselines", "truth_root", "write_affectnet_twin",
    "write_ckplus_twin", "write_six_emotion_set", "write_unbc_twin",
]
