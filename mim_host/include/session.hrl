%% The test host's session.hrl: ejabberd_sm's session record, with
%% MongooseIM's field names and order (sid = {Microseconds, Pid},
%% usr = {LUser, LServer, LResource}, us = {LUser, LServer},
%% priority = integer() | undefined (undefined: no available presence),
%% info = #{atom() => term()}).
-ifndef(MONGOOSEIM_SESSION_HRL).
-define(MONGOOSEIM_SESSION_HRL, true).

-record(session, {sid, usr, us, priority, info}).

-endif.
