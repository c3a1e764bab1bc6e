from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from webapp.accounts.models import ApiToken


class WhoAmIView(APIView):
    @extend_schema(responses=inline_serializer("WhoAmI", {
        "username": serializers.CharField(), "is_staff": serializers.BooleanField(),
        "auth": serializers.CharField(), "token": serializers.DictField(allow_null=True),
    }))
    def get(self, request):
        token = request.auth if isinstance(request.auth, ApiToken) else None
        return Response(
            {
                "username": request.user.username,
                "is_staff": request.user.is_staff,
                "auth": "token" if token else "session",
                "token": {"prefix": token.prefix, "name": token.name, "created_at": token.created_at}
                if token
                else None,
            }
        )
