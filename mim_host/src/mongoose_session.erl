%% @doc The test host's `mongoose_session': accessors of an
%% `ejabberd_sm' session record, as MongooseIM has them.
-module(mongoose_session).

-export([get_info/1, get_info/3, set_info/3, get_resource/1]).

-include("session.hrl").

-spec get_info(ejabberd_sm:session()) -> ejabberd_sm:info().
get_info(#session{info = Info}) ->
    Info.

%% @doc `{Key, Value}' when the key is set, else `Default' (MongooseIM's shape).
-spec get_info(ejabberd_sm:session(), ejabberd_sm:info_key(), any()) -> any().
get_info(#session{info = Info}, Key, Default) ->
    case Info of
        #{Key := Value} -> {Key, Value};
        #{} -> Default
    end.

-spec set_info(ejabberd_sm:session(), ejabberd_sm:info_key(), any()) -> ejabberd_sm:session().
set_info(#session{info = Info} = Session, Key, Value) ->
    Session#session{info = Info#{Key => Value}}.

-spec get_resource(ejabberd_sm:session()) -> jid:lresource().
get_resource(#session{usr = {_, _, LResource}}) ->
    LResource.
