import django_filters

from .models import InboundMessage, ReconciliationTask


class InboundMessageFilter(django_filters.FilterSet):
    type = django_filters.CharFilter(field_name="message_type", help_text="Message type, e.g. ADT^A03 or Bundle.")
    sender = django_filters.CharFilter(field_name="sender", lookup_expr="icontains")

    class Meta:
        model = InboundMessage
        fields = ["status", "channel", "format", "type", "sender", "control_id"]


class ReconciliationTaskFilter(django_filters.FilterSet):
    class Meta:
        model = ReconciliationTask
        fields = ["status", "kind", "priority", "patient"]
