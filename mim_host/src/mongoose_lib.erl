%% @doc The test host's `mongoose_lib': the helpers the event pusher uses.
-module(mongoose_lib).

-export([log_if_backend_error/4]).

-include_lib("kernel/include/logger.hrl").

%% @doc Logs a backend result that is not a success (`ok', `{ok, _}',
%% `{atomic, _}', `{updated, _}'), as MongooseIM does; always `ok'.
-spec log_if_backend_error(term(), module(), integer(), term()) -> ok.
log_if_backend_error(Result, Module, Line, Args) ->
    case backend_failure(Result) of
        none ->
            ok;
        {Text, Reason} ->
            ?LOG_ERROR(#{what => backend_error, text => Text, reason => Reason,
                         caller_module => Module, caller_line => Line, args => Args})
    end.

%% The success shapes backends return (plain, mnesia transaction, SQL update);
%% anything else is logged with what came back.
-spec backend_failure(term()) -> none | {binary(), term()}.
backend_failure(ok) -> none;
backend_failure({Tag, _}) when Tag =:= ok; Tag =:= atomic; Tag =:= updated -> none;
backend_failure({error, Reason}) -> {<<"A backend call returned an error">>, Reason};
backend_failure(Other) -> {<<"A backend call returned an unexpected value">>, Other}.
