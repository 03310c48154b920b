// main.jsx — entry point: loads the styles and mounts the app.
import { render } from 'preact';
import { App } from './app.jsx';
import './styles.css';

render(<App />, document.getElementById('app'));
