import json

from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response
from rest_framework.views import APIView

from pharmacy.api.exceptions import error_body
from pharmacy.api.views import PhiReadMixin
from pharmacy.roles import ADMIN, INTEGRATOR, PHARMACIST, PRESCRIBER, TECHNICIAN
from pharmacy.scoping import is_partner
from priorauth import selectors, services
from priorauth.filters import PACaseFilter

from . import serializers as s

STAFF = {PHARMACIST, TECHNICIAN, ADMIN}


class ClaimRejectionView(APIView):
    """A rejected pharmacy claim. Reject 75 opens a PA case (answered with its id); other codes are
    recorded as their own reasons. Repeated deliveries of one claim reference open one case."""

    allowed_roles = {"write": {INTEGRATOR, ADMIN}}

    @extend_schema(
        request=s.ClaimRejectionInSerializer,
        responses={201: s.ClaimRejectionOutSerializer, 200: s.ClaimRejectionOutSerializer},
    )
    def post(self, request):
        data = s.ClaimRejectionInSerializer(data=request.data, context={"request": request})
        data.is_valid(raise_exception=True)
        v = data.validated_data
        rejection, created = services.claim_rejection_receive(
            actor=request.user,
            claim_reference=v["claim_reference"],
            patient=v["patient"],
            prescription=v["prescription"],
            drug=v["drug"],
            ndc=v["ndc"],
            bin=v["bin"],
            pcn=v["pcn"],
            group=v["group"],
            reject_codes=v["reject_codes"],
            rejected_at=v["rejected_at"],
        )
        body = {
            "claim_rejection": rejection.pk,
            "case": rejection.case_id,
            "created": created,
            "deliveries": rejection.deliveries,
            "reasons": rejection.reasons,
        }
        return Response(body, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


class PAResponseView(APIView):
    """A payer's decision pushed to us. A malformed one answers 400, is kept (flagged) and changes
    nothing; one the case cannot take answers 409."""

    allowed_roles = {"write": {INTEGRATOR, ADMIN}}

    @extend_schema(request=s.PAResponseInSerializer, responses={201: s.PAResponseOutSerializer})
    def post(self, request):
        data = request.data
        raw = json.dumps(data, default=str) if not isinstance(data, str) else data
        case_id = data.get("case") if isinstance(data, dict) else None
        if is_partner(request.user) and not (str(case_id or "").isdigit() and selectors.pa_case_list(
                user=request.user).filter(pk=int(case_id), payer__in=selectors.partner_payers(request.user)).exists()):
            # A payer's integrator account answers only its own payer's cases: anyone else's case
            # (or any case, for a pharmacy's account) is answered like an unknown one — stored,
            # flagged, attached to no case, changing nothing (store first; no hint that it exists).
            case_id = None
        response = services.pa_response_receive(
            case_id=case_id, data=data if isinstance(data, dict) else None, raw=raw
        )
        if response.is_malformed:
            errors = {k: [{"code": "invalid", "message": v}] for k, v in response.errors.items()}
            body = error_body(
                "malformed_response", "The response is malformed; it was kept and changed nothing.", errors
            )
            body["response"] = response.pk
            return Response(body, status=status.HTTP_400_BAD_REQUEST)
        case = response.case
        case.refresh_from_db(fields=["status"])
        return Response(
            {"response": response.pk, "case": case.pk, "status": case.status, "applied": response.applied},
            status=status.HTTP_201_CREATED,
        )


class PACaseViewSet(
    PhiReadMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin, viewsets.GenericViewSet
):
    """PA cases with evidence, criteria result, draft, submissions and responses; transitions are
    POST actions (illegal ones answer 409). Only a pharmacist (or admin) submits or appeals."""

    filterset_class = PACaseFilter
    allowed_roles = {
        "read": STAFF | {INTEGRATOR, PRESCRIBER},
        "write": STAFF,
        "submit": {PHARMACIST, ADMIN},
        "appeal": {PHARMACIST, ADMIN},
        "cancel": STAFF,
    }

    def get_serializer_class(self):
        return s.PACaseSerializer if self.action == "list" else s.PACaseDetailSerializer

    def get_queryset(self):
        qs = selectors.pa_case_list(user=self.request.user)
        if self.action != "list":
            qs = qs.prefetch_related("submissions__outbox", "responses")
        return qs

    phi_what = "PA case"

    def _answer(self, case, code=status.HTTP_200_OK):
        case = selectors.pa_case_detail(case_id=case.pk, user=self.request.user)
        return Response(s.PACaseDetailSerializer(case).data, status=code)

    @extend_schema(request=s.PACaseOpenSerializer, responses={201: s.PACaseDetailSerializer})
    def create(self, request, *args, **kwargs):
        data = s.PACaseOpenSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        case = services.pa_case_open(
            prescription_id=data.validated_data["prescription"].pk, actor=request.user
        )
        return self._answer(case, status.HTTP_201_CREATED)

    @extend_schema(request=s.SubmitSerializer, responses=s.PACaseDetailSerializer)
    @action(detail=True, methods=["post"])
    def submit(self, request, pk=None):
        data = s.SubmitSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        case = services.pa_case_submit(
            case_id=self.get_object().pk,
            actor=request.user,
            letter=data.validated_data.get("letter"),
            fields=data.validated_data.get("fields"),
        )
        return self._answer(case)

    @extend_schema(request=s.CancelSerializer, responses=s.PACaseDetailSerializer)
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        data = s.CancelSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        case = services.pa_case_cancel(
            case_id=self.get_object().pk, actor=request.user, reason=data.validated_data["reason"]
        )
        return self._answer(case)

    @extend_schema(request=s.AppealSerializer, responses=s.PACaseDetailSerializer)
    @action(detail=True, methods=["post"])
    def appeal(self, request, pk=None):
        data = s.AppealSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        case = services.pa_case_appeal(
            case_id=self.get_object().pk, actor=request.user, letter=data.validated_data.get("letter")
        )
        return self._answer(case)
