"""The planner's choice for an NGC PyTorch image (pure): the newest monthly release on the image's
track whose CUDA the fleet runs natively (its image config's CUDA version and NGC's minimum
driver; the data-center forward-compatibility branches are reported, never counted as fit), with
the release's own stack as the pins it brings. CUDA images are tasks/research/planner.py's."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from tasks.images.tags import NgcTag
from tasks.research.drivers import fleet_check
from tasks.research.facts import Facts
from tasks.research.planner import ImagePlan, StackInputs, apply_stack
from tasks.statuses import SupportStatus


def plan_ngc(
    image: str,
    dockerfile: str,
    current_ref: str,
    current: NgcTag,
    tags: list[str],
    env: Mapping[str, str] | None,
    facts: Facts | None = None,
    *,
    fleet_min_driver: int = 535,
    cuda_of: Callable[[str], str | None] = lambda tag: None,
    inputs: StackInputs | None = None,
) -> ImagePlan:
    """NGC PyTorch images: the newest release on the same track (py3 / igpu) whose CUDA the fleet
    runs (the registry's CUDA_VERSION of the tag, else the facts; NGC never goes back a CUDA
    version, so a release after a known CUDA-13 one needs at least that), and the decisions for the
    Dockerfile's ``pip install`` pins (CuPy, onnxruntime-gpu) on the chosen release's CUDA."""
    from tasks.research.facts import load_facts

    facts = facts or load_facts()
    inputs = inputs or StackInputs()
    ref_repo = current_ref.split("@", 1)[0].rsplit(":", 1)[0]
    track = sorted(
        (t for t in (NgcTag.try_parse(x) for x in tags) if t is not None and t.same_track(current)),
        key=lambda t: t.sort_key,
        reverse=True,
    )
    present = str(current) in tags
    plan = ImagePlan(
        image, dockerfile, "ngc", current_ref, SupportStatus.SUPPORTED if present else SupportStatus.DELETED
    )
    if not present:
        plan.due = True
        plan.reasons.append(f"{current} is gone from the registry")
    known = sorted(facts.ngc_releases.values(), key=lambda r: r.release)

    def floor_of(tag: NgcTag) -> str | None:
        earlier = [r for r in known if r.release <= tag.release]
        return earlier[-1].cuda if earlier else None

    def cuda_for(tag: NgcTag, ask: bool) -> tuple[str | None, str]:
        if tag == current and env and env.get("CUDA_VERSION"):
            return env["CUDA_VERSION"], "its image config"
        row = facts.ngc_releases.get(tag.release)
        answer = cuda_of(str(tag)) if ask else None
        if answer:
            return answer, "its image config"
        if row:
            return row.cuda, f"facts ({row.provenance})" if row.provenance else "facts"
        return None, ""

    now_cuda, _ = cuda_for(current, ask=False)
    if now_cuda:
        check = fleet_check(now_cuda, fleet_min_driver, facts, (env or {}).get("NVIDIA_REQUIRE_CUDA"))
        if not check.ok:
            plan.urgent = plan.due = True
            plan.reasons.append(
                f"URGENT: the fleet cannot run the current image {current} (CUDA {now_cuda}): {check.reason}"
            )
    chosen: tuple[NgcTag, str, str] | None = None
    skipped: list[str] = []
    pool = [t for t in track if t.sort_key > current.sort_key] + (
        [t for t in track if t.sort_key < current.sort_key] if plan.urgent else []
    )
    for tag in pool:
        floor = floor_of(tag)
        if floor and not fleet_check(floor, fleet_min_driver, facts).ok and facts.ngc_releases.get(tag.release) is None:
            skipped.append(f"{tag.release} (CUDA >= {floor}, the newest known release before it)")
            continue
        cuda, where = cuda_for(tag, ask=True)
        if cuda is None:
            skipped.append(f"{tag.release} (CUDA unknown)")
            continue
        check = fleet_check(cuda, fleet_min_driver, facts)
        if not check.ok:
            skipped.append(f"{tag.release} (CUDA {cuda}: {check.reason})")
            continue
        chosen = (tag, cuda, f"{where}; {check.how}")
        break
    if skipped:
        shown = skipped[:3] + ([f"{len(skipped) - 3} more"] if len(skipped) > 3 else [])
        plan.reasons.append(f"newer NGC releases the fleet cannot run: {', '.join(shown)}")
    cuda_now = now_cuda
    if chosen is not None:
        tag, cuda, where = chosen
        plan.target = f"{ref_repo}:{tag}"
        row = facts.ngc_releases.get(tag.release)
        minimum = row.min_driver if row else facts.toolkit_min_driver.get(cuda, "unknown")
        plan.reasons.append(
            f"target NGC {tag.release}: the newest release on the track that the fleet runs: CUDA {cuda} "
            f"({where}), minimum driver {minimum}"
        )
        cuda_now = cuda
    else:
        plan.reasons.append(f"{current.release} is the newest NGC release on its track that the fleet runs")
    if facts.ngc_forward_compatibility:
        listed = (env or {}).get("NVIDIA_REQUIRE_CUDA", "")
        if f"driver>={fleet_min_driver}" in listed:
            plan.reasons.append(f"forward compatibility: {facts.ngc_forward_compatibility}")
    if env:
        plan.reasons.append(f"current contents: CUDA {env.get('CUDA_VERSION')}, PyTorch {env.get('PYTORCH_VERSION')}")
    if cuda_now:
        request = inputs.request(image, cuda_now, 9, manages_torch=False)
        apply_stack(plan, inputs, request, facts)
    if plan.moves_base and not plan.due:
        plan.reasons.append("current release is still usable: the update is optional")
    plan.settle()
    return plan
