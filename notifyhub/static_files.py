"""Static files (the admin's, the API docs' Swagger UI and Redoc, the landing page's) served by
the web process itself, through WhiteNoise."""

from collections.abc import Awaitable, Callable
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction, sync_to_async
from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from whitenoise.middleware import WhiteNoiseMiddleware

GetResponse = Callable[[HttpRequest], Any]


class StaticFilesMiddleware(WhiteNoiseMiddleware):
    """WhiteNoise, adapted to the two handlers of notifyhub/asgi.py.

    - It can sit in the streams' async chain: WhiteNoise's own middleware is sync only, and
      Django would then run the rest of that chain, the stream view included, through
      async_to_sync on a thread held for the whole stream. Here a request that is not for a
      static file goes straight on, on the event loop.
    - A file is answered as one plain response read on the web thread: WhiteNoise's
      FileResponse is a sync iterator, which Django's ASGI handler warns about and hands to
      yet another thread per request. Static files here are at most a few hundred kilobytes
      (compressed), so reading one whole costs less than either.
    """

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: GetResponse) -> None:
        super().__init__(get_response)
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        if self.is_async:
            return self.__acall__(request)  # type: ignore[return-value]  # Django awaits it
        static_file = self._static_file(request)
        if static_file is not None:
            return self.serve(static_file, request)
        response: HttpResponseBase = self.get_response(request)
        return response

    async def __acall__(self, request: HttpRequest) -> HttpResponseBase:
        if request.path_info.startswith(self.static_prefix):  # Never a stream's path.
            static_file = await sync_to_async(self._static_file)(request)
            if static_file is not None:
                return await sync_to_async(self.serve)(static_file, request)
        get_response: Callable[[HttpRequest], Awaitable[HttpResponseBase]] = self.get_response
        return await get_response(request)

    def _static_file(self, request: HttpRequest) -> Any:
        if self.autorefresh:  # DEBUG: files are looked up as they are asked for.
            return self.find_file(request.path_info)
        return self.files.get(request.path_info)

    @staticmethod
    def serve(static_file: Any, request: HttpRequest) -> HttpResponse:
        answer = static_file.get_response(request.method, request.META)
        body = b""
        if answer.file is not None:  # None for HEAD and 304
            with answer.file:
                body = answer.file.read()
        response = HttpResponse(body, status=int(answer.status))
        del response["Content-Type"]  # WhiteNoise's headers say it, and the length and caching.
        for name, value in answer.headers:
            response[name] = value
        return response
