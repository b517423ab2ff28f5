"""Extension studies beside the Prajod et al. reproduction, one module per paper.

- :mod:`.arabian`: Arabian et al. 2022, transfer learning vs. training from scratch with
  SE and CBAM attention, Grad-CAM overlap with the regions of importance.

Modules are imported explicitly (``from forgetting_aus.studies import arabian``) so that
importing this package loads neither TensorFlow nor any study.
"""
