%% @doc The test host's `mongoose_lib': the helpers the event pusher uses.
-module(mongoose_lib).

-export([log_if_backend_error/4]).

-include_lib("kernel/include/logger.hrl").

%% @doc Logs a backend result that is not a success (`ok', `{ok, _}',
%% `{atomic, _}', `{updated, _}'), as MongooseIM does; always `ok'.
-spec log_if_backend_error(term(), module(), integer(), term()) -> ok.
log_if_backend_error(ok, _Module, _Line, _Args) -> ok;
log_if_backend_error({ok, _}, _Module, _Line, _Args) -> ok;
log_if_backend_error({atomic, _}, _Module, _Line, _Args) -> ok;
log_if_backend_error({updated, _}, _Module, _Line, _Args) -> ok;
log_if_backend_error({error, Reason}, Module, Line, Args) ->
    ?LOG_ERROR(#{what => backend_error, text => <<"Error calling backend module">>,
                 caller_module => Module, caller_line => Line, reason => Reason, args => Args});
log_if_backend_error(Other, Module, Line, Args) ->
    ?LOG_ERROR(#{what => backend_error, text => <<"Unexpected return from backend">>,
                 caller_module => Module, caller_line => Line, reason => Other, args => Args}).
