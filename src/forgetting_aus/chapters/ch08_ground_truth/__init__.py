"""Chapter 08, ground truth: does the paper's method find what was really forgotten?

A small package, one module per concern, in the order the chapter uses them:
:mod:`.pairs` (counterfactual renders), :mod:`.truth` (sensitivities, the forgotten-AU
rule and the seed threshold), :mod:`.controls` (the control models), :mod:`.methods`
(the paper's methods scored against the truth) and :mod:`.verdicts` (summary tables, the
values the prose glues, claims). Each module holds its own constants.

The synthetic world knows every face's action units, so forgetting can be *measured*
without the paper's method and the method can be scored against it.

1. **Counterfactual pairs** (:func:`.pairs.sample_pair_design`, :func:`.pairs.render_pairs`,
   :func:`.pairs.counterfactual_pairs`): for every AU, ``gt_pairs_per_au`` pairs of faces with
   the same identity, nuisance, sensor noise and neutral-ish base AUs, the AU on
   (intensity 3-5; AU43: closed) in one and off (0) in the other. Both faces are cropped
   with the *off* face's landmark box (as the AffectNet reader crops, rounded box, PIL
   bilinear), so the pair differs in the AU alone, not in a zoom that a jaw drop or a
   brow raise would cause through the landmark box.
2. **Sensitivities** (:func:`.truth.sensitivities`): how much the AU moves each model's
   ``block5_pool`` features (L2 distance on vs off, divided by the mean distance between
   two random base faces, so models with different feature scales compare), and how much
   it moves the true-class logits of the re-trained emotion models (mean over the emotions
   whose prototype uses the AU of ``logit(on) - logit(off)``).
3. **The forgotten-AU rule** (:func:`.truth.compare_sensitivity`): FreezeB<k> forgot an AU when
   its sensitivity is below FreezeB5's: ratio (features) or difference (logits) with a
   paired bootstrap interval over pairs that excludes 1 (0). That interval covers the
   faces, not the training run; :func:`.truth.beyond_seed_noise` adds the training run: the
   spread of log ratios between two FreezeB0 that differ only in their seed
   (:func:`.truth.seed_noise`) sets the threshold a ratio must pass (:func:`.truth.seed_threshold`),
   and :func:`.truth.null_leave_one_out` checks the threshold on the seed pair itself.
4. **Controls** (:func:`.controls.control_model`, :func:`.controls.null_model`): the emotion model with
   block 5 drawn afresh, fine-tuned on emotion faces that never show AU X, against the
   same on the same faces with X (the sham): the X-free model must lose X; a second
   FreezeB0 that differs from the first only in its seed must lose nothing.
5. **The method, scored** (:func:`.methods.lrp_rankings`,
   :func:`.methods.probe_tables`, :func:`.methods.precision_table`): chapter 05's LRP region ranking (pooled over emotions,
   class-matched baseline; its maps made by the same
   :func:`forgetting_aus.explain.lrp.explain_rows` as chapter 05's) and chapter 06's probe comparison, their precision@k against
   the counterfactual top-k, with permutation p-values.

Everything expensive is cached in the artifact store, keyed by the upstream artifact keys
and the knobs; the code behind each artifact is listed in :data:`forgetting_aus.cache.CODE`.
"""

from forgetting_aus.chapters.ch08_ground_truth import controls, methods, pairs, truth, verdicts

__all__ = ["controls", "methods", "pairs", "truth", "verdicts"]
