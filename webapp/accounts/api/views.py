from rest_framework.response import Response
from rest_framework.views import APIView

from webapp.accounts.models import ApiToken


class WhoAmIView(APIView):
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
