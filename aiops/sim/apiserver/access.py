"""Access reviews: `SelfSubjectAccessReview` answers "may I?" with "does this server serve that verb?".

Nobody is authenticated, so the answer is about the simulated cluster's capabilities: tools that ask before
they write (and `kubectl auth can-i`) learn that pods cannot be deleted but deployments/scale can be patched.
(kubectl sends the review as protobuf: `protobuf.decode_access_review` reads it.)
"""

from __future__ import annotations

from typing import Any

from aiops.sim.apiserver import discovery as disc
from aiops.sim.apiserver.errors import bad_request

def access_review(review: Any) -> dict[str, Any]:
    """The answered review: allowed exactly when this server serves the verb on the resource."""
    if not isinstance(review, dict) or not isinstance(review.get("spec"), dict):
        raise bad_request("a SelfSubjectAccessReview needs a spec with resourceAttributes or nonResourceAttributes")
    spec = review["spec"]
    ra, nra = spec.get("resourceAttributes"), spec.get("nonResourceAttributes")
    if isinstance(ra, dict):
        ok = disc.allowed(ra.get("verb", ""), ra.get("group", ""), ra.get("resource", ""), ra.get("subresource", ""))
        why = "the simulated cluster serves this verb" if ok else \
            "the simulated cluster does not serve this verb on this resource"
    elif isinstance(nra, dict):
        ok = nra.get("verb", "get") == "get"
        why = "the simulated cluster serves read-only non-resource paths"
    else:
        raise bad_request("a SelfSubjectAccessReview needs resourceAttributes or nonResourceAttributes")
    status: dict[str, Any] = {"allowed": ok, "reason": why}
    if not ok:
        status["denied"] = True
    return {"kind": "SelfSubjectAccessReview", "apiVersion": "authorization.k8s.io/v1",
            "metadata": {"creationTimestamp": None}, "spec": spec, "status": status}
