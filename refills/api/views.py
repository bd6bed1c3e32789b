from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from pharmacy.access import mark_phi_access
from pharmacy.api.views import PhiReadMixin
from pharmacy.roles import ADMIN, INTEGRATOR, PHARMACIST, PRESCRIBER, TECHNICIAN
from refills import intake as intake_service
from refills import selectors, services
from refills.filters import RefillRequestFilter

from . import serializers as s

STAFF = {PHARMACIST, TECHNICIAN, ADMIN}


class RefillRequestViewSet(PhiReadMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin,
                           mixins.CreateModelMixin,
                           viewsets.GenericViewSet):
    """Refill and renewal requests; transitions are POST actions (illegal ones answer 409)."""

    phi_what = "refill request"

    serializer_class = s.RefillRequestSerializer
    filterset_class = RefillRequestFilter
    allowed_roles = {
        "read": STAFF | {INTEGRATOR, PRESCRIBER}, "write": STAFF | {INTEGRATOR},
        "approve": {PHARMACIST, ADMIN}, "deny": {PHARMACIST, ADMIN}, "forward": {PHARMACIST, ADMIN},
        "cancel": STAFF | {INTEGRATOR}, "claim": STAFF, "unclaim": STAFF,
        "intake": STAFF | {INTEGRATOR},
    }

    def get_serializer_class(self):
        return s.RefillRequestDetailSerializer if self.action == "retrieve" else s.RefillRequestSerializer

    def get_queryset(self):
        qs = selectors.refill_request_list(user=self.request.user)
        if self.action == "list":  # the list serializer reads only the drug; the rest are ids
            qs = qs.select_related(None).select_related("prescription__drug")
        return qs

    @extend_schema(request=s.RefillRequestCreateSerializer, responses={201: s.RefillRequestSerializer})
    def create(self, request, *args, **kwargs):
        data = s.RefillRequestCreateSerializer(data=request.data, context={"request": request})
        data.is_valid(raise_exception=True)
        req = services.refill_request_open(prescription=data.validated_data["prescription"], actor=request.user,
                                           source=data.validated_data["source"],
                                           kind=data.validated_data.get("kind"),
                                           reason=data.validated_data["note"] or "Opened through the API")
        return Response(s.RefillRequestSerializer(req).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=s.IntakeInputSerializer, responses={201: s.IntakeMessageSerializer})
    @action(detail=False, methods=["post"], url_path="intake")
    def intake(self, request):
        """A patient's or pet owner's free-text request (SMS, e-mail, portal). Always stored (201):
        ``status`` is ``matched`` with the opened ``requests`` and their match confidence, or
        ``triage`` with the reason when a person has to decide. Through an integrator account the
        sender is matched only to the patients and prescriptions of its bound pharmacies: the answer
        never names another pharmacy's patient (issue 14 item 3)."""
        data = s.IntakeInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        msg = intake_service.intake_receive(channel=v["channel"], sender=v["sender"], text=v["text"],
                                            received_at=v.get("received_at"), actor=request.user)
        body = s.IntakeMessageSerializer(msg).data
        shown = {r["patient"] for r in body["requests"]} | {p["id"] for p in msg.match_detail.get("patients", [])}
        mark_phi_access(request, shown | {msg.matched_patient_id}, f"API intake message {msg.pk}")
        return Response(body, status=status.HTTP_201_CREATED)

    def _answer(self, req):
        req.refresh_from_db()
        return Response(s.RefillRequestSerializer(req).data)

    @extend_schema(request=s.ApproveSerializer, responses=s.RefillRequestSerializer)
    @action(detail=True, methods=["post"])
    def approve(self, request, pk=None):
        """Approve. 409 ``prescriber_authorization_required`` for a renewal the user may not authorize
        (a new prescription: the prescriber, or a pharmacist under a collaborative practice agreement;
        never Schedule II–V — 21 CFR 1311), 409 ``not_eligible`` with the blocking finding codes in
        ``errors.eligibility``, 400 naming the limit for refills beyond it."""
        data = s.ApproveSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        req = services.refill_request_approve(request_id=self.get_object().pk, actor=request.user, note=v["note"],
                                              quantity=v.get("quantity"), days_supply=v.get("days_supply"),
                                              refills=v.get("refills"), override_reason=v["override_reason"])
        return self._answer(req)

    @extend_schema(request=s.DenySerializer, responses=s.RefillRequestSerializer)
    @action(detail=True, methods=["post"])
    def deny(self, request, pk=None):
        data = s.DenySerializer(data=request.data)
        data.is_valid(raise_exception=True)
        req = services.refill_request_deny(request_id=self.get_object().pk, actor=request.user,
                                           reason=data.validated_data["reason"],
                                           reason_code=data.validated_data["reason_code"])
        return self._answer(req)

    @extend_schema(request=s.NoteSerializer, responses=s.RefillRequestSerializer)
    @action(detail=True, methods=["post"])
    def forward(self, request, pk=None):
        data = s.NoteSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        req = services.refill_request_forward(request_id=self.get_object().pk, actor=request.user,
                                              note=data.validated_data["note"])
        return self._answer(req)

    @extend_schema(request=s.NoteSerializer, responses=s.RefillRequestSerializer)
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        data = s.NoteSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        req = services.refill_request_cancel(request_id=self.get_object().pk, actor=request.user,
                                             reason=data.validated_data["note"])
        return self._answer(req)

    @extend_schema(request=None, responses=s.RefillRequestSerializer)
    @action(detail=True, methods=["post"])
    def claim(self, request, pk=None):
        return self._answer(services.refill_request_claim(request_id=self.get_object().pk, actor=request.user))

    @extend_schema(request=None, responses=s.RefillRequestSerializer)
    @action(detail=True, methods=["post"])
    def unclaim(self, request, pk=None):
        return self._answer(services.refill_request_unclaim(request_id=self.get_object().pk, actor=request.user))
