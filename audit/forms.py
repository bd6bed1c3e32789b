from __future__ import annotations

from datetime import timedelta

from django import forms
from django.utils import timezone


class ExportForm(forms.Form):
    start = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}))
    end = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}))
    patient = forms.IntegerField(required=False, min_value=1, label="Patient ID (optional)")

    MAX_DAYS = 3660

    def __init__(self, data=None, **kwargs):
        super().__init__(data, **kwargs)
        today = timezone.localdate()
        self.fields["start"].initial = today - timedelta(days=30)
        self.fields["end"].initial = today

    def clean(self):
        data = super().clean()
        start, end = data.get("start"), data.get("end")
        if start and end:
            if end < start:
                raise forms.ValidationError("The end date is before the start date.")
            if (end - start).days > self.MAX_DAYS:
                raise forms.ValidationError(f"At most {self.MAX_DAYS} days per export.")
        return data
