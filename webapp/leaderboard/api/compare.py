"""GET /api/v1/compare/?a=<checkpoint>&b=<checkpoint>[&benchmark=<key>]: two checkpoints item by item
(``webapp.leaderboard.selectors.compare``). Visible as the checkpoints are; 404 for one you cannot see."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import permissions, serializers
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from webapp.leaderboard.selectors.compare import CompareError, checkpoint_comparison


class CompareQuerySerializer(serializers.Serializer):
    a = serializers.IntegerField(min_value=1, help_text="The checkpoint compared against (differences are b − a).")
    b = serializers.IntegerField(min_value=1, help_text="The checkpoint compared.")
    benchmark = serializers.CharField(required=False, max_length=50, help_text="Only this benchmark key, e.g. pope.")


def comparison_for(user, query) -> dict:
    """The comparison a query asks for; raises DRF's ValidationError (400) or NotFound (404) with the message."""
    params = CompareQuerySerializer(data=query)
    params.is_valid(raise_exception=True)
    data = params.validated_data
    try:
        return checkpoint_comparison(user, data["a"], data["b"], data.get("benchmark"))
    except CompareError as error:
        raise (NotFound if error.status == 404 else ValidationError)({"detail": str(error)}) from None


class CompareView(APIView):
    permission_classes = [permissions.AllowAny]

    @extend_schema(parameters=[CompareQuerySerializer], responses={200: OpenApiTypes.OBJECT},
                   summary="Two checkpoints item by item: difference, interval, paired test, disagreeing items")
    def get(self, request):
        return Response(comparison_for(request.user, request.query_params))
